"""Supervisor coaching backend: everything that ships in the Lambda package."""
