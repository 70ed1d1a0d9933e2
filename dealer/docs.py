"""The OpenAPI document at /openapi.json and Swagger UI at /docs; neither needs a token.

Swagger UI's files come from the installed swagger-ui-bundle package, so the
page works on a machine without internet access.
"""

from pathlib import Path

import orjson
from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from dealer.openapi import build_document
from dealer.responses import json_bytes_response

OPENAPI_JSON = web.AppKey("openapi_json", bytes)
ASSETS_FOLDER = Path(str(swagger_ui_path))
# Only these files of the package are served, each with a fixed content type.
ASSET_CONTENT_TYPES = {
    "swagger-ui.css": "text/css",
    "swagger-ui.css.map": "application/json",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-bundle.js.map": "application/json",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

# validatorUrl null: otherwise Swagger UI sends the document to an online validator.
# persistAuthorization: the token pasted into Authorize survives a page reload.
PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>dealer API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    });
  </script>
</body>
</html>
"""

routes = web.RouteTableDef()


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return json_bytes_response(request.app[OPENAPI_JSON])


@routes.get("/docs")
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@routes.get("/docs/")
async def docs_page_with_slash(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/docs")


@routes.get("/docs/{name}")
async def docs_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSET_CONTENT_TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(ASSETS_FOLDER / name, headers={"Content-Type": ASSET_CONTENT_TYPES[name]})


def setup_docs(app: web.Application) -> None:
    """Build the OpenAPI document once and add the routes that serve it and Swagger UI."""
    app[OPENAPI_JSON] = orjson.dumps(build_document())
    app.add_routes(routes)
