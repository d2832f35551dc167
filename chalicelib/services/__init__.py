"""Use cases of the product, written against ports (see ``ports``) so they run on fakes or AWS."""
