"""The MGCMA Explorer app: plotly figures (`demo.plots`) and the Gradio layout (`demo.app`)."""
