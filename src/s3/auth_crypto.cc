// The SigV4 signing-key derivation.
#include "s3/auth.h"

namespace granary::s3 {

std::string DeriveSigningKey(std::string_view secret_key, std::string_view date,
                             std::string_view region, std::string_view service) {
  std::string key = "AWS4";
  key += secret_key;
  std::string k_date = HmacSha256(key, date);
  std::string k_region = HmacSha256(k_date, region);
  std::string k_service = HmacSha256(k_region, service);
  return HmacSha256(k_service, "aws4_request");
}

}  // namespace granary::s3
