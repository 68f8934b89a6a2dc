"""The dashboard's pages, one script each (app/shell.py lists them in st.navigation; each defines page() and
calls it, as Streamlit runs a page file as a script). The folder is not named pages/: Streamlit would serve
each file at its own URL by itself, without the shell.

PAGES: {title: file name (and URL path, with '-' for '_')}; the first is the default page, served at /.
"""
PAGES = {"Jobs": "jobs", "New job": "new_job", "GPUs": "gpus", "Training": "training", "Serving": "serving",
         "Models": "models", "Evaluations": "evaluations", "Data": "data"}
DEFAULT_PAGE = next(iter(PAGES.values()))
