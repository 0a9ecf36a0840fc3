"""Configuration: the settings, where they come from, the providers and the model routes.

settings.py   `Settings`, every setting as one Struct (names = environment variables)
loading.py    `load_settings`: `.env` + environment -> checked `Settings` with its routes
dotenv.py     the `.env` format
checks.py     rules that span several settings
providers.py  the provider table: one row per vendor
routes.py     named model routes: the simple form and the models file
"""

from aura_agent.config.dotenv import parse_dotenv
from aura_agent.config.loading import load_settings
from aura_agent.config.settings import ConfigError, Settings

__all__ = ["ConfigError", "Settings", "load_settings", "parse_dotenv"]
