"""The one Jinja2 environment every generator renders with."""

import jinja2

from edgegen.paths import TEMPLATES_DIR


def template_environment() -> jinja2.Environment:
    """Strict (an undefined name is an error, never empty text) and with
    whitespace control, so templates stay readable and output stays tidy."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
