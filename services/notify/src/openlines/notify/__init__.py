"""openlines notify: live operator streams over WebSocket."""
