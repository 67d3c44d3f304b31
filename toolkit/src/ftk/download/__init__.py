"""The download stage: fetch the base model from ModelScope (or take a local folder), check it."""
