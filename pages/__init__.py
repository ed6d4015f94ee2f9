"""The dashboard's pages (run by `app.py` through `st.navigation`) and their shared UI modules.

`ui` holds the shared objects (store, job manager), the session's UI state and the widgets
several pages use; `charts` builds the Altair charts. Neither holds business logic: the pages
call `automl_core` and `store` for every computation.
"""
