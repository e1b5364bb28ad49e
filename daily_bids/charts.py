"""Charts for asset metadata: matplotlib figures as PNG bytes, and PNGs embedded in Markdown for the Dagster UI."""

import base64
import io


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display here), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(figure) -> bytes:
    plt = pyplot()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG embedded in Markdown, which the Dagster UI renders in asset metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
