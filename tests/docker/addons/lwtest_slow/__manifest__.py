# ruff: noqa: B018
{
    "name": "Loomworks image test: slow request",
    "version": "18.0.1.0.0",
    "depends": ["web"],
    "license": "LGPL-3",
    "installable": True,
}
