"""Comparing models: the quality/cost table of a study (:mod:`.table`) and its HTML dashboard (:mod:`.dashboard`)."""
