"""openlines outbound: sends operator replies to the messenger providers."""
