"""Reports: turn method results into files (figures, pages, JSON)."""
