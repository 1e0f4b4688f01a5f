"""The Streamlit page's tabs and shared widgets: with app.py, the only code that imports streamlit."""
