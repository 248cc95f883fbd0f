"""openlines dialogs service: the Dialog aggregate, its read model and the operator API."""
