//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "aitrail", description = "A tamper-evident audit trail for AI decisions and the people who review them."),
    paths(
        crate::routes::events::append,
        crate::routes::events::read,
        crate::routes::events::proof,
        crate::routes::query::list,
        crate::routes::query::timeline,
        crate::routes::query::export_events,
        crate::routes::query::review,
        crate::routes::subjects::erase,
        crate::routes::holds::list,
        crate::routes::holds::add,
        crate::routes::holds::release,
        crate::routes::checkpoint::latest,
        crate::routes::consistency::consistency,
        crate::routes::system::health,
        crate::routes::system::metrics,
        crate::routes::system::openapi,
    ),
    components(schemas(crate::routes::events::Receipts, crate::routes::events::ReceiptBody, crate::routes::events::EntryBody, crate::error::ErrorBody, crate::error::ErrorDetail, crate::routes::consistency::ConsistencyBody, crate::routes::query::Page, crate::routes::query::ReviewRequest, crate::routes::subjects::EraseRequest, crate::routes::subjects::ErasureBody, crate::routes::holds::HoldRequest, crate::routes::holds::ReleaseRequest)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}
