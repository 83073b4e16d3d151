"""Model-card templates (Jinja, rendered by ``huggingface_hub.ModelCard.from_template``).

Installed as the package ``ganzoo_directions.hub_cards`` (see ``[tool.setuptools.package-dir]``).
"""
