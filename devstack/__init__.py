"""The local stack: the whole product on one port with an embedded store (``python -m devstack``).

Kept outside ``chalicelib/`` so none of it is ever packaged into the Lambda zip.
"""
