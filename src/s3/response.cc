// Response helpers (response.h).
#include "s3/response.h"

#include "s3/errors.h"

namespace granary::s3 {

Response XmlResponse(std::string xml) {
  Response r;
  r.body = std::move(xml);
  r.AddHeader("Content-Type", "application/xml");
  return r;
}

Response ErrorResponse(const Status& status, const Request& request) {
  S3Error error = ErrorFor(status);
  Response r;
  r.status = error.http_status;
  if (error.http_status == 304) return r;
  if (request.method == "HEAD") {
    // A HEAD response carries no body; the status says it all.
    r.omit_body = true;
    r.content_length = 0;
    return r;
  }
  r.body = ErrorXml(error, request.Resource(), request.request_id);
  r.AddHeader("Content-Type", "application/xml");
  return r;
}

}  // namespace granary::s3
