"""The HTTP face: a FastAPI app under /v1 for partners, citizens and auditors."""
