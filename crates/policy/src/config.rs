//! Policy config: the route-level YAML types, decoded (with YAML paths in errors) by
//! `sekisho-config` and re-exported here so policies and their tests name them in one place.

pub use sekisho_config::{
    ApiKeysConfig, AuthConfig, BreakerConfig, ClaimRequirement, ExtAuthCacheConfig, ExtAuthConfig,
    FailMode, JwksConfig, JwtAlgorithm, JwtConfig, JwtKeysConfig, KeyFileConfig, LockBackendConfig,
    LockConfig, LockWait, OnBusy, RateBackend, RateFallback, RateKey, RateLimitConfig, TokenSource,
};

/// The `jsonwebtoken` algorithm of a configured one.
pub(crate) fn jwt_algorithm(a: JwtAlgorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as A;
    match a {
        JwtAlgorithm::HS256 => A::HS256,
        JwtAlgorithm::RS256 => A::RS256,
        JwtAlgorithm::RS384 => A::RS384,
        JwtAlgorithm::RS512 => A::RS512,
        JwtAlgorithm::PS256 => A::PS256,
        JwtAlgorithm::PS384 => A::PS384,
        JwtAlgorithm::PS512 => A::PS512,
        JwtAlgorithm::ES256 => A::ES256,
        JwtAlgorithm::ES384 => A::ES384,
        JwtAlgorithm::EdDSA => A::EdDSA,
    }
}
