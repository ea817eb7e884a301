// The runbook's alerts, as code, all routed to one action group (email):
//   HTTP 5xx rate      > 1 %  of requests over 5 min   production slot, platform metrics
//   p95 latency        > 2 s  over 5 min               production slot, Application Insights
//   restarts           > 2    in 10 min                production slot, Functions host starts
//   CPU                > 80 % average over 15 min      Elastic Premium plan
//   memory             > 80 % average over 15 min      Elastic Premium plan
//
// The staging slot is a separate resource (Microsoft.Web/sites/slots) with its own telemetry role
// name (<app>-staging), so smoke tests against it never page anyone.

param location string
param tags object
param actionGroupName string

@description('Who gets the alert emails.')
param alertEmail string

param planId string
param siteId string
param appName string
param appInsightsId string
param workspaceId string

@description('Below this many requests in the window the rate and percentile alerts stay quiet (one failed request out of three is noise, not an incident).')
param minimumRequests int = 20

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'stratus'
    enabled: true
    emailReceivers: [
      {
        name: 'operations'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// A ratio needs both counts, which a metric alert cannot divide; the platform's Requests and
// Http5xx metrics reach the AzureMetrics table through the site's diagnostic setting. Platform
// metrics also count the 5xx answered by the front end when no worker responds, which the app's
// own telemetry never sees.
var http5xxRateQuery = join([
  'AzureMetrics'
  '| where ResourceId =~ \'${siteId}\''
  '| where MetricName in (\'Requests\', \'Http5xx\')'
  '| summarize requestCount = sumif(Total, MetricName == \'Requests\'), errorCount = sumif(Total, MetricName == \'Http5xx\')'
  '| where requestCount >= ${minimumRequests}'
  '| extend errorRatePercent = 100.0 * errorCount / requestCount'
], '\n')

// Metric alerts have no percentiles; the requests table has every invocation's duration (ms).
// The timer's invocations are not requests anyone waits for.
var p95LatencyQuery = join([
  'requests'
  '| where cloud_RoleName =~ \'${appName}\''
  '| where name != \'redis_reconnect\''
  '| summarize p95DurationMs = percentile(duration, 95), requestCount = count()'
  '| where requestCount >= ${minimumRequests}'
], '\n')

// What measures a restart: the Functions host logs "Host started" each time it starts on an
// instance (process crash, recycle, `az functionapp restart`, configuration change). A scale-out
// also starts a host, but on a new instance, so only starts beyond the first per instance count.
// The Activity Log was not used: it records restarts requested through the API, not crashes or
// platform recycles.
var restartsQuery = join([
  'traces'
  '| where cloud_RoleName =~ \'${appName}\''
  '| where message startswith \'Host started\''
  '| summarize hostStarts = count() by cloud_RoleInstance'
  '| summarize restarts = sum(hostStarts - 1)'
], '\n')

resource http5xxRate 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'stratus-http-5xx-rate'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Stratus: HTTP 5xx rate above 1% (5 min)'
    description: 'More than 1% of production requests answered 5xx over the last 5 minutes. Runbook: docs/runbook.md.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: http5xxRateQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'errorRatePercent'
          operator: 'GreaterThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource p95Latency 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'stratus-p95-latency'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Stratus: p95 latency above 2 s (5 min)'
    description: 'The 95th percentile of production request duration exceeded 2 seconds over the last 5 minutes. Runbook: docs/runbook.md.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: p95LatencyQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'p95DurationMs'
          operator: 'GreaterThan'
          threshold: 2000
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource restarts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'stratus-restarts'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Stratus: more than 2 restarts in 10 min'
    description: 'The Functions host restarted more than twice on production instances within 10 minutes. Runbook: docs/runbook.md.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: restartsQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'restarts'
          operator: 'GreaterThan'
          threshold: 2
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource planCpu 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'stratus-plan-cpu-high'
  location: 'global'
  tags: tags
  properties: {
    description: 'Elastic Premium plan CPU above 80% on average for 15 minutes. Runbook: docs/runbook.md.'
    severity: 2
    enabled: true
    scopes: [
      planId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    targetResourceType: 'Microsoft.Web/serverfarms'
    targetResourceRegion: location
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'CpuPercentage'
          metricNamespace: 'Microsoft.Web/serverfarms'
          metricName: 'CpuPercentage'
          operator: 'GreaterThan'
          threshold: 80
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

resource planMemory 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'stratus-plan-memory-high'
  location: 'global'
  tags: tags
  properties: {
    description: 'Elastic Premium plan memory above 80% on average for 15 minutes. Runbook: docs/runbook.md.'
    severity: 2
    enabled: true
    scopes: [
      planId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    targetResourceType: 'Microsoft.Web/serverfarms'
    targetResourceRegion: location
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'MemoryPercentage'
          metricNamespace: 'Microsoft.Web/serverfarms'
          metricName: 'MemoryPercentage'
          operator: 'GreaterThan'
          threshold: 80
          timeAggregation: 'Average'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

output actionGroupId string = actionGroup.id
