"""The shared kernel: what every layer may use and what imports no layer of MovieAugur.

Settings (one object read from MOVIEAUGUR_* variables), the HTTP helpers every service shares
(JSON responses, the error shape, metrics, middlewares) and the translation of validation errors
into messages that name the element and the field. Keeping them here, below domain/, commands/,
projections/, queries/ and offline/, is what lets those layers share them without importing each
other or the composition root (movieaugur/).
"""
