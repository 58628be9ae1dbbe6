// Starts Kroxylicious (io.kroxylicious:kroxylicious-runtime) from a proxy
// configuration file, for bench/kafka_bench.py. Maven Central serves the
// proxy's runtime but not its application artifact (kroxylicious-app, which
// holds the `kroxylicious` command), so this does what that command does:
// parse the YAML with the runtime's ConfigParser, start a KafkaProxy with the
// default features, and block until the process is told to stop.
//
//   java -cp "classes:libs/*" KroxyliciousLauncher CONFIG.yaml
//
// Exit status: 0 after SIGTERM/SIGINT, 2 on a usage error, 1 when the proxy
// fails to start (the cause on stderr).

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import io.kroxylicious.proxy.KafkaProxy;
import io.kroxylicious.proxy.config.ConfigParser;
import io.kroxylicious.proxy.config.Configuration;
import io.kroxylicious.proxy.internal.config.Features;

public final class KroxyliciousLauncher {
    private KroxyliciousLauncher() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: KroxyliciousLauncher CONFIG.yaml");
            System.exit(2);
        }
        Path path = Path.of(args[0]);
        ConfigParser parser = new ConfigParser();
        Configuration config;
        try (InputStream in = Files.newInputStream(path)) {
            config = parser.parseConfiguration(in);
        }
        catch (Exception e) {
            System.err.println("KroxyliciousLauncher: cannot read " + path + ": " + e);
            System.exit(1);
            return;
        }
        KafkaProxy proxy = new KafkaProxy(parser, config, Features.defaultFeatures());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                proxy.close();
            }
            catch (Exception e) {
                System.err.println("KroxyliciousLauncher: error while stopping: " + e);
            }
        }, "launcher-shutdown"));
        try {
            proxy.startup();
            System.err.println("KroxyliciousLauncher: started from " + path);
            proxy.block();
        }
        catch (Exception e) {
            System.err.println("KroxyliciousLauncher: the proxy failed: " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }
}
