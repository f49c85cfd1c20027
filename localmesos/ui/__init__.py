"""The live page of a cluster (static/) and `localmesos ui`, its proxy to any Mesos master."""
