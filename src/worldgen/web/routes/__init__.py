"""HTTP routes, one module per noun; each exposes ``router: APIRouter``."""
