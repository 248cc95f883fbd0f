"""The crm-link service: customer identities, leads, and the dialogs linked to them."""
