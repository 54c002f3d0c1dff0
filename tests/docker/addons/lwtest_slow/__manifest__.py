# ruff: noqa: B018
{
    "name": "Loomworks test addon: slow request, bus notification",
    "version": "18.0.1.0.0",
    "depends": ["web", "bus"],
    "license": "LGPL-3",
    "installable": True,
}
