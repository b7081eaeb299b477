"""Other people's optimizers as kronbench submissions (submissions/README.md, "Third-party submissions")."""
