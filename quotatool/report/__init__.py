"""Renderers that turn results into output: tables for people, documents for programs."""
