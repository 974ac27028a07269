import Foundation
import Testing

@testable import AuthenticatedHTTP

@Suite struct BearerTokenPolicyTests {
    @Test func onlyHTTPSReceivesATokenUnlessATestSaysOtherwise() throws {
        let policy = BearerTokenPolicy(scope: "https://vault.azure.net/.default")
        #expect(try policy.scope(for: #require(URL(string: "https://v.vault.azure.net/secrets/x"))) == "https://vault.azure.net/.default")
        #expect(try policy.scope(for: #require(URL(string: "HTTPS://v.vault.azure.net"))) == "https://vault.azure.net/.default")
        for text in ["http://v.vault.azure.net/secrets/x", "ftp://v.vault.azure.net", "v.vault.azure.net/secrets"] {
            #expect(throws: AuthenticatedHTTPError(code: .insecureURL, message: "")) {
                try policy.scope(for: try #require(URL(string: text)))
            }
        }
        let permissive = BearerTokenPolicy(scope: "s", allowsPlainHTTP: true)
        #expect(try permissive.scope(for: #require(URL(string: "http://127.0.0.1:8080"))) == "s")
    }

    @Test(arguments: [
        ("myvault.vault.azure.net", "https://vault.azure.net/.default"),
        ("MyVault.Vault.Azure.NET", "https://vault.azure.net/.default"),
        ("acct.blob.core.windows.net", "https://storage.azure.com/.default"),
        ("acct.dfs.core.windows.net", "https://storage.azure.com/.default"),
        ("management.azure.com", "https://management.azure.com/.default"),
        ("graph.microsoft.com", "https://graph.microsoft.com/.default"),
        ("ns.servicebus.windows.net", "https://servicebus.azure.net/.default"),
        ("db.documents.azure.com", "https://cosmos.azure.com/.default"),
        ("srv.database.windows.net", "https://database.windows.net/.default"),
        ("cfg.azconfig.io", "https://azconfig.io/.default"),
        ("x.openai.azure.com", "https://cognitiveservices.azure.com/.default"),
    ])
    func theScopeOfAKnownAzureServiceComesFromItsHost(host: String, scope: String) throws {
        #expect(try BearerTokenPolicy().scope(scheme: "https", host: host) == scope)
    }

    @Test func anUnknownHostIsRefusedRatherThanGivenSomeoneElsesToken() throws {
        for host in ["example.com", "vault.azure.net.evil.example", ".vault.azure.net", "evilvault.azure.net"] {
            #expect(throws: AuthenticatedHTTPError(code: .noScopeForHost, message: "")) {
                try BearerTokenPolicy().scope(scheme: "https", host: host)
            }
        }
        let custom = BearerTokenPolicy(scope: .custom { $0 == "api.internal" ? "api://internal/.default" : nil })
        #expect(try custom.scope(scheme: "https", host: "api.internal") == "api://internal/.default")
        #expect(throws: AuthenticatedHTTPError(code: .noScopeForHost, message: "")) { try custom.scope(scheme: "https", host: "other") }
    }
}
