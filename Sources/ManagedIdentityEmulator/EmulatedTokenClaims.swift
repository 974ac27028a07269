@_exported import struct ManagedIdentityTesting.TokenClaims

/// The claims of a token the emulator issues: the package's one fake-token format, ``TokenClaims``.
public typealias EmulatedTokenClaims = TokenClaims
