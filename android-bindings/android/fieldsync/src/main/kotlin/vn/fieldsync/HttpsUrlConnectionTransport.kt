package vn.fieldsync

import java.io.IOException
import java.io.InputStream
import java.net.URL
import java.security.GeneralSecurityException
import java.security.KeyStore
import java.security.cert.CertificateFactory
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.SSLSocketFactory
import javax.net.ssl.TrustManagerFactory
import uniffi.fieldsync_android.Header
import uniffi.fieldsync_android.HttpResponse
import uniffi.fieldsync_android.HttpTransport
import uniffi.fieldsync_android.TransportException

/**
 * fieldsync's HTTP transport over the platform's [HttpsURLConnection], with no other dependency.
 *
 * fieldsync builds every request and reads every answer; this class only moves the bytes. It is
 * stateless and may be shared by every store and thread. Its calls block: `FieldStore.enrol` and
 * `FieldStore.sync` must run off the main thread (a WorkManager worker, Dispatchers.IO).
 *
 * Without [socketFactory], TLS follows the app's network security config (trusted CAs,
 * `<pin-set>`, cleartext policy) like any other connection of the app. With it, TLS goes through
 * that factory instead, e.g. [trustingOnly] for a server whose certificate the app ships.
 *
 * @param socketFactory TLS sockets for every request; `null` for the platform default.
 * @param connectTimeoutMillis how long to wait for the connection (TCP and TLS handshake).
 * @param readTimeoutMillis how long to wait for each read of the answer; the server answers a
 *   sync request only after storing it, so allow for a slow network.
 */
class HttpsUrlConnectionTransport @JvmOverloads constructor(
    private val socketFactory: SSLSocketFactory? = null,
    private val connectTimeoutMillis: Int = 15_000,
    private val readTimeoutMillis: Int = 60_000,
) : HttpTransport {

    override fun post(url: String, headers: List<Header>, body: ByteArray): HttpResponse {
        var conn: HttpsURLConnection? = null
        try {
            conn = URL(url).openConnection() as? HttpsURLConnection
                ?: throw TransportException.Failed("only https URLs are allowed")
            socketFactory?.let { conn.sslSocketFactory = it }
            conn.requestMethod = "POST"
            conn.doOutput = true
            conn.useCaches = false
            conn.instanceFollowRedirects = false
            conn.connectTimeout = connectTimeoutMillis
            conn.readTimeout = readTimeoutMillis
            headers.forEach { conn.setRequestProperty(it.name, it.value) }
            // A gzip request (/v1/sync) gets a gzip answer, which fieldsync inflates itself. Android's
            // HttpURLConnection, when it adds Accept-Encoding on its own, inflates such answers before
            // the caller sees them; naming Accept-Encoding here keeps the bytes as the server sent them.
            val gzipRequest = headers.any {
                it.name.equals("content-encoding", ignoreCase = true) && it.value.equals("gzip", ignoreCase = true)
            }
            if (gzipRequest && headers.none { it.name.equals("accept-encoding", ignoreCase = true) }) {
                conn.setRequestProperty("Accept-Encoding", "gzip")
            }
            conn.setFixedLengthStreamingMode(body.size)
            conn.outputStream.use { it.write(body) }
            val status = conn.responseCode
            if (status !in 100..599) throw TransportException.Failed("not an HTTP answer")
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            val answer = stream?.use { it.readBytes() } ?: ByteArray(0)
            return HttpResponse(status.toUShort(), answer)
        } catch (e: IOException) {
            conn?.disconnect()
            throw TransportException.Failed(e.javaClass.simpleName + ": " + (e.message ?: ""))
        }
    }

    companion object {
        /**
         * TLS sockets that trust only the X.509 certificates (PEM or DER) in [certificates], e.g. the
         * server's own certificate or a private CA shipped in `res/raw`. Host names are still
         * checked. Closes the stream.
         */
        @JvmStatic
        @Throws(GeneralSecurityException::class, IOException::class)
        fun trustingOnly(certificates: InputStream): SSLSocketFactory {
            val certs = certificates.use { CertificateFactory.getInstance("X.509").generateCertificates(it) }
            require(certs.isNotEmpty()) { "no certificate in the stream" }
            val keys = KeyStore.getInstance(KeyStore.getDefaultType()).apply {
                load(null, null)
                certs.forEachIndexed { i, cert -> setCertificateEntry("fieldsync-$i", cert) }
            }
            val trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(keys) }
            return SSLContext.getInstance("TLS").apply { init(null, trust.trustManagers, null) }.socketFactory
        }
    }
}
