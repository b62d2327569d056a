"""vizvae: look inside variational autoencoders.

Data flows one way: ``data -> models -> inference -> viz -> pages``. Nothing in this package
imports Streamlit.
"""

__version__ = "0.1.0"
