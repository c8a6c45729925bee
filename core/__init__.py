"""Core layer: settings, database, models, tenancy and security. Imports nothing above it."""
