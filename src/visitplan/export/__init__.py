"""Exporters: they format schedules computed by the engine and never compute a date."""
