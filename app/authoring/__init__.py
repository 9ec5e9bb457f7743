"""Instructors' workbench: editing, versions, imports and exports, statistics."""
