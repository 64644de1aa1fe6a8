import Foundation
import HTTPCaching
import RedisClient
import SidecacheConfig
import Testing

@Suite struct RedisConfigTests {
    @Test func redisSectionWithDefaultsAndEveryValue() throws {
        let minimal = try parse("""
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          redis: { url: "redis://127.0.0.1:6379/0" }
        """)
        #expect(minimal.cache.redis == SidecacheConfiguration.Redis(url: RedisURL(address: .tcp(host: "127.0.0.1", port: 6379))))
        #expect(minimal.cache.redis?.invalidationChannel == "sidecache:invalidate")

        let full = try parse("""
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          redis:
            url: "redis://app:secret@10.0.0.5:6380/2"
            key_prefix: "shop:"
            pool_size: 8
            timeout: 20ms
            max_object_bytes: 1MiB
        """)
        let redis = try #require(full.cache.redis)
        #expect(redis.url == RedisURL(address: .tcp(host: "10.0.0.5", port: 6380), user: "app", password: "secret", database: 2))
        #expect(redis.keyPrefix == "shop:" && redis.poolSize == 8 && redis.timeout == .milliseconds(20) && redis.maxObjectBytes == 1 << 20)
        #expect(try parse("upstream: { url: \"http://127.0.0.1:3000\" }").cache.redis == nil)
    }

    @Test func mistakesNamePathAndLine() {
        let e = errors("""
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          redis:
            url: "http://127.0.0.1:6379"
            pool_size: 0
            timeout: 0s
            key_prefx: "x"
        """)
        #expect(e.map(\.path) == ["cache.redis.url", "cache.redis.pool_size", "cache.redis.timeout", "cache.redis.key_prefx"])
        #expect(e.map(\.line) == [4, 5, 6, 7])
        #expect(e[3].message.contains("did you mean 'key_prefix'"))

        let missing = errors("""
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          redis: { pool_size: 2 }
        """)
        #expect(missing.map(\.path) == ["cache.redis.url"])
    }

    @Test func theActiveConfigHidesThePassword() throws {
        let config = try parse("""
        upstream: { url: "http://127.0.0.1:3000" }
        cache:
          redis: { url: "redis://:hunter2@127.0.0.1:6379/1" }
        """)
        let json = try String(decoding: JSONEncoder().encode(config), as: UTF8.self)
        #expect(!json.contains("hunter2"))
        #expect(json.contains("127.0.0.1:6379"))
    }
}

@Suite struct AdminConfigTests {
    @Test func adminSectionAndItsMistakes() throws {
        let config = try parse("""
        upstream: { url: "http://127.0.0.1:3000" }
        admin: { listen: "0.0.0.0:9901", token_file: /etc/sidecache/admin.token }
        """)
        #expect(config.admin == SidecacheConfiguration.Admin(listen: .init(host: "0.0.0.0", port: 9901), tokenFile: "/etc/sidecache/admin.token"))
        #expect(config.admin?.isLoopback == false)
        #expect(try parse("upstream: { url: \"http://127.0.0.1:3000\" }\nadmin: {}").admin?.isLoopback == true)
        let e = errors("""
        listen: "127.0.0.1:8080"
        upstream: { url: "http://127.0.0.1:3000" }
        admin:
          listen: "127.0.0.1:8080"
          token_file: admin.token
          tokn: x
        """)
        #expect(e.map(\.path) == ["admin.listen", "admin.token_file", "admin.tokn"])
    }
}
