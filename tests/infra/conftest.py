"""Fixtures of the infra tier: the packaged build, shared by every test module here."""

from tests.infra.build import build, packaged, transformed, zip_names

__all__ = ["build", "packaged", "transformed", "zip_names"]
