// The package ships no types; this is the part of its result the tests read.
declare module 'parse-prometheus-text-format' {
  namespace parsePrometheusTextFormat {
    interface PromSample {
      value?: string
      labels?: Record<string, string>
      quantiles?: Record<string, string>
      count?: string
      sum?: string
    }
    interface PromFamily {
      name: string
      help: string
      type: string
      metrics: PromSample[]
    }
  }
  function parsePrometheusTextFormat(text: string): parsePrometheusTextFormat.PromFamily[]
  export = parsePrometheusTextFormat
}
