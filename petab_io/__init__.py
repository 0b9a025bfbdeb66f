"""PEtab/SBML import and export."""
