"""The recommendations case: a seeded shop (:mod:`.generate`), the two-tower model's inputs
(:mod:`.features`) and model (:mod:`.towers`), and the figures that show the case's story (:mod:`.evidence`)."""
