// The one table that maps a granary::Code to the S3 error (code and HTTP status), and the S3
// <Error> document.
//
// A message may name a more precise S3 error before its first ':' ("MalformedXML: ...",
// "SignatureDoesNotMatch: ..."); when that name is a known S3 error, it wins over the default of
// the code. Authentication errors always carry their S3 name that way.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace granary::s3 {

struct S3Error {
  std::string code;     // "NoSuchKey"
  unsigned http_status;  // 404
  std::string message;  // for the client, without the "Code: " prefix
};

// REQUIRES: !status.ok().
S3Error ErrorFor(const Status& status);

// A Status that ErrorFor() maps to the S3 error `s3_code`: `code` with message "s3_code: text".
Status S3Status(Code code, std::string_view s3_code, std::string_view text);

// The HTTP status of a known S3 error code, or 0 if the name is not known.
unsigned HttpStatusOf(std::string_view s3_code);

// <?xml ...?><Error><Code/><Message/><Resource/><RequestId/></Error>
std::string ErrorXml(const S3Error& error, std::string_view resource, std::string_view request_id);

// A new request id: 16 upper-case hex digits, unique within the process.
std::string NewRequestId();

}  // namespace granary::s3
