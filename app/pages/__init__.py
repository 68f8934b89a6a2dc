"""The dashboard's pages, one script each (app/dashboard.py lists them in st.navigation; each defines page()
and calls it, as Streamlit runs a page file as a script)."""
