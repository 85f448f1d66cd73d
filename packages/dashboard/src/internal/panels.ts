/**
 * Shared building blocks of the dashboards: the datasource variable every
 * panel follows, query variables over a metric's label, PromQL targets, and
 * panel presets with units and legends set the same way everywhere.
 */
import * as common from "@grafana/grafana-foundation-sdk/common"
import {
  type Dashboard,
  DashboardBuilder,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort
} from "@grafana/grafana-foundation-sdk/dashboard"
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus"
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat"
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries"
import { DATASOURCE_NAME } from "./provisioning.js"

/** Every panel and query variable follows the `datasource` variable, so one import works with any Prometheus. */
export const datasource = { type: "prometheus", uid: "${datasource}" } as const

/**
 * The `datasource` variable starts on the provisioned datasource: Grafana
 * matches a saved value by uid (by name in versions before Scenes), and falls
 * back to another Prometheus datasource when none matches, as when the JSON
 * is imported into a Grafana without that datasource.
 */
const datasourceVariable = (uid: string) =>
  new DatasourceVariableBuilder("datasource")
    .label("Data source")
    .type("prometheus")
    .current({ selected: true, text: DATASOURCE_NAME, value: uid })

/** The tag that links the Bulwark dashboards to each other. */
export const TAG = "bulwark"

/** @internal */
export const dashboard = (options: {
  readonly uid: string
  readonly title: string
  readonly description: string
  readonly datasourceUid: string
}) =>
  new DashboardBuilder(options.title)
    .uid(options.uid)
    .description(options.description)
    .tags([TAG, "generated"])
    .editable()
    .refresh("30s")
    .time({ from: "now-3h", to: "now" })
    .timezone("browser")
    .link(
      new DashboardLinkBuilder("Bulwark dashboards")
        .type(DashboardLinkType.Dashboards)
        .tags([TAG])
        .asDropdown(true)
        .includeVars(false)
        .keepTime(true)
    )
    .withVariable(datasourceVariable(options.datasourceUid))

/**
 * A multi-value variable over one label of one metric; "All" matches every
 * value (`.*`), including series that appear after the dashboard loaded.
 *
 * @internal
 */
export const labelVariable = (name: string, label: string, metric: string) =>
  new QueryVariableBuilder(name)
    .label(label)
    .datasource(datasource)
    .query(`label_values(${metric}, ${name})`)
    .definition(`label_values(${metric}, ${name})`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(true)
    .includeAll(true)
    .allValue(".*")

/** @internal */
export const target = (expr: string, legend: string, refId = "A") =>
  new DataqueryBuilder().expr(expr).legendFormat(legend).refId(refId).datasource(datasource)

const legend = () =>
  new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(["mean", "max", "lastNotNull"])

const tooltip = () =>
  new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending)

/** A time series with a table legend (mean, max, last) and a sorted multi-series tooltip. */
export const timeseries = (title: string, description: string, unit: string) =>
  new TimeseriesPanel()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .legend(legend())
    .tooltip(tooltip())
    .height(8)
    .span(12)

/** A stacked time series, for parts of a whole (outcomes, decisions, sources). */
export const stacked = (title: string, description: string, unit: string) =>
  timeseries(title, description, unit)
    .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
    .fillOpacity(40)

/**
 * A single number with a sparkline; with `thresholds`, green below the first,
 * amber from it, red from the second.
 */
export const stat = (
  title: string,
  description: string,
  unit: string,
  thresholds?: readonly [amber: number, red: number]
) => {
  const panel = new StatPanel()
    .title(title)
    .description(description)
    .datasource(datasource)
    .unit(unit)
    .noValue("0")
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]))
    .height(4)
    .span(6)
  const steps = thresholds === undefined
    ? [{ value: null, color: "text" }]
    : [{ value: null, color: "green" }, { value: thresholds[0], color: "orange" }, {
      value: thresholds[1],
      color: "red"
    }]
  return panel.thresholds(new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps))
}

/**
 * Numbers the panels (rows included) in order: Grafana needs a stable,
 * unique `id` per panel for links, repeats and "view panel" URLs.
 *
 * @internal
 */
export const numberPanels = (built: Dashboard): Dashboard => ({
  ...built,
  panels: (built.panels ?? []).map((panel, index) => ({ ...panel, id: index + 1 }))
})

/** `rate()` over Grafana's `$__rate_interval` (at least four scrape intervals). */
export const rate = (selector: string) => `rate(${selector}[$__rate_interval])`

/** @internal */
export const quantile = (q: number, histogram: string, matchers: string, by: ReadonlyArray<string>) =>
  `histogram_quantile(${q}, sum by (${[...by, "le"].join(", ")}) (${rate(`${histogram}_bucket{${matchers}}`)}))`
