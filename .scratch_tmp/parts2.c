#define _POSIX_C_SOURCE 200809L
#define TFU_IMPLEMENTATION
#include "tensorfuse.h"
#include "examples/llama.h"
#include <time.h>
#define NREP 9
static double now_s(void){struct timespec ts;clock_gettime(CLOCK_MONOTONIC,&ts);return ts.tv_sec+ts.tv_nsec*1e-9;}
static int cmpd(const void*a,const void*b){double x=*(const double*)a,y=*(const double*)b;return (x>y)-(x<y);}
static tfu_tensor *rnd(tfu_context*ctx,tfu_type ty,int64_t a,int64_t b,uint32_t s){tfu_tensor*t=tfu_new_tensor_2d(ctx,ty,a,b);llama_fill(t,&s,0,0.05f);return t;}
static void timeit(const char*name,tfu_graph*g,int thr){
  int f,i; double ms[2], sm[2][NREP]; tfu_plan*p[2];
  for(f=0;f<2;f++){tfu_plan_options o=tfu_plan_default_options();o.n_threads=thr;o.no_fusion=!f;p[f]=tfu_plan_compile(g,&o);tfu_plan_run(p[f]);tfu_plan_run(p[f]);}
  for(i=0;i<NREP;i++)for(f=0;f<2;f++){double t0=now_s();tfu_plan_run(p[f]);sm[f][i]=(now_s()-t0)*1e3;}
  for(f=0;f<2;f++){qsort(sm[f],NREP,sizeof(double),cmpd);ms[f]=sm[f][NREP/2];tfu_plan_free(p[f]);}
  printf("%-28s thr %d: unfused %8.3f ms  fused %8.3f ms  x%.2f\n",name,thr,ms[0],ms[1],ms[0]/ms[1]);
}
int main(int argc,char**argv){
  int D=argc>2?atoi(argv[2]):512,F=argc>3?atoi(argv[3]):1376,T=argc>1?atoi(argv[1]):32,thr;
  tfu_context*ctx=tfu_init_malloc((size_t)1<<30,0);
  tfu_tensor*h=rnd(ctx,TFU_F32,D,T,1),*wg=rnd(ctx,TFU_F32,D,F,2),*wu=rnd(ctx,TFU_F32,D,F,3),*wd=rnd(ctx,TFU_F32,F,D,4),*r=rnd(ctx,TFU_F32,D,T,5),*wn=rnd(ctx,TFU_F32,D,1,6),*wo=rnd(ctx,TFU_F32,D,D,7);
  tfu_graph*g1=tfu_graph_build(ctx,tfu_swiglu_split(ctx,tfu_mul_mat(ctx,wg,h),tfu_mul_mat(ctx,wu,h)));
  tfu_graph*g2=tfu_graph_build(ctx,tfu_add(ctx,tfu_mul_mat(ctx,wd,tfu_swiglu_split(ctx,tfu_mul_mat(ctx,wg,h),tfu_mul_mat(ctx,wu,h))),r));
  tfu_graph*g3=tfu_graph_build(ctx,tfu_add(ctx,tfu_mul_mat(ctx,wo,h),r));
  tfu_graph*g4=tfu_graph_build(ctx,tfu_mul_mat(ctx,wo,tfu_mul(ctx,tfu_rms_norm(ctx,h,1e-5f),wn)));
  tfu_graph*g5=tfu_graph_build(ctx,tfu_mul_mat(ctx,wg,h));
  for(thr=1;thr<=(argc>4?atoi(argv[4]):2);thr++){
  timeit("mm",g5,thr);
  timeit("swiglu(mm,mm)",g1,thr);
  timeit("mm(swiglu(mm,mm))+r",g2,thr);
  timeit("mm+r",g3,thr);
  timeit("mm(rms*w)",g4,thr);}
  return 0;}
