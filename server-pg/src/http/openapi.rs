//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and the
//! [`crate::wire`] types (never written by hand, so it cannot drift from the code).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::handlers;
use crate::wire::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "AQM coin directory", description = "Publish and claim AQM coins (docs/http-api.md)."),
    paths(
        handlers::register, handlers::get_user, handlers::upload, handlers::fetch, handlers::count,
        handlers::purge_stale, handlers::hard_delete, handlers::health
    ),
    components(schemas(
        CoinJson, UploadRequest, UploadResponse, FetchResponse, CountResponse, PurgeStaleRequest,
        HardDeleteRequest, DeletedResponse, HealthResponse, RegisterRequest, RegisterResponse,
        IdentityResponse, ErrorBody
    )),
    modifiers(&Security)
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("admin", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document served at `/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
