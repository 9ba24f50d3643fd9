"""Architecture search: proposing candidates and training them as Ray Tune trials (:mod:`nas.search.tune_runner`)."""
