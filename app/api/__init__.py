"""HTTP layer: Starlette routes built from the OpenAPI spec, validation, problem+json."""
