"""openlines notify: live operator streams over WebSocket, and signed outgoing webhooks."""
