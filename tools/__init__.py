"""Tools for developing, demonstrating and testing War Room. Not part of the product:
nothing under `warroom`, `incidents`, `roster` or `notifications` imports them."""
