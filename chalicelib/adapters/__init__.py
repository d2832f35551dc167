"""Adapters: DynamoDB, API Gateway pushes, Chime SDK, secrets, tokens."""
