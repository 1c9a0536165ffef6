"""IA-JEPA: interaction-aware video JEPA world models."""
